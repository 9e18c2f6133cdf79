-- name: OrderInsert :one
INSERT INTO orders (customer, cart_key, total_cents)
VALUES (@customer, @cart_key, @total_cents)
RETURNING id;

-- name: OrdersListByCustomer :many
SELECT id, customer, cart_key, total_cents, created_at
FROM orders
WHERE customer = @customer
ORDER BY id;

-- OrdersWithLiveCart joins the application's table with the store's: the
-- orders whose cart entry is still in the store (not expired), with the
-- cart's version. sqlc checks it against pgstate's exported schema.
-- name: OrdersWithLiveCart :many
SELECT o.id, o.customer, e.version AS cart_version
FROM orders o
JOIN state_entries e ON e.key = o.cart_key
WHERE e.expires_at IS NULL OR e.expires_at > now()
ORDER BY o.id;
