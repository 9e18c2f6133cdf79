-- The shop's orders, in the store's schema next to state_entries. A cart
-- lives in the store under the key cart_key until the order is placed.
CREATE TABLE orders (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer    TEXT        NOT NULL,
    cart_key    BYTEA       NOT NULL,
    total_cents BIGINT      NOT NULL CHECK (total_cents >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Serves OrdersListByCustomer.
CREATE INDEX orders_customer_idx ON orders (customer, id);

---- create above / drop below ----

DROP TABLE orders;
