-- Streaming replicas: health, replay lag and replay position (state/replica.go).

-- A standby's recovery state, replay position and replay lag. The lag is 0
-- when everything received has been replayed: a primary with nothing to
-- send sends nothing, and the age of the last replayed commit would grow
-- for ever.
-- name: ReplicaStatusGet :one
SELECT
    pg_is_in_recovery()::bool AS in_recovery,
    coalesce(pg_last_wal_replay_lsn()::text, '')::text AS replay_position,
    (CASE
        WHEN NOT pg_is_in_recovery()
            OR pg_last_wal_receive_lsn() IS NULL
            OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
        ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000000, 0)
    END)::bigint AS lag_micros;

-- Whether the standby has replayed the WAL up to a position. sqlc.arg
-- rather than @position: sqlc 1.31 garbles "@position::text::pg_lsn" when
-- it rewrites the query.
-- name: ReplicaReplayedAtLeast :one
SELECT coalesce(pg_last_wal_replay_lsn() >= sqlc.arg(position)::text::pg_lsn, false)::bool AS replayed;

-- The primary's WAL insert position: every commit acknowledged before the
-- call ends at or before it.
-- name: WalPositionGet :one
SELECT pg_current_wal_insert_lsn()::text AS position;
