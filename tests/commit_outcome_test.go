package tests

import (
	"errors"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// A transaction of the store whose reply to COMMIT is lost is not run
// again. pgx reports that connection as closed, an error that claims
// nothing was sent, so CreateCheckpoint used to run again with the same id
// and fail with a duplicate key (23505): a failure reported for a
// checkpoint that had committed. The call now says that its outcome is
// unknown, and the one checkpoint that committed exists.
func TestCommitReplyLostIsNotRetried(t *testing.T) {
	t.Parallel()
	proxy, s := proxiedStore(t, testdb.DSN(t))
	if err := s.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	proxy.cutAfterReply("COMMIT\x00")
	_, err := s.CreateCheckpoint(bg)
	if proxy.cut.Load() != 1 {
		t.Fatalf("the proxy cut %d replies, want 1", proxy.cut.Load())
	}
	if !errors.Is(err, state.ErrOutcomeUnknown) {
		t.Fatalf("CreateCheckpoint = %v, want ErrOutcomeUnknown", err)
	}
	infos, err := s.ListCheckpoints(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Fatalf("%d checkpoints after one CreateCheckpoint whose COMMIT reply was lost, want exactly 1", len(infos))
	}
}
