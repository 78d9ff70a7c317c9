-- +goose Up
-- The read side: one table per view of domain.md §8, all in schema proj so
-- that a rebuild can build a whole new schema beside it and swap the two in
-- one transaction. Every row remembers the stream sequence that last wrote it.
CREATE SCHEMA proj;

-- The projection's position: every row change and this row commit together.
CREATE TABLE proj.checkpoint (
    name     text PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

-- Customer look-up by fingerprint or account (2373); no real-name number in clear.
CREATE TABLE proj.customers (
    customer_no      text PRIMARY KEY,
    customer_type    text NOT NULL CHECK (customer_type IN ('INDIVIDUAL', 'CORPORATE')),
    residency        text NOT NULL CHECK (residency IN ('DOMESTIC', 'FOREIGN')),
    real_name_fp     text NOT NULL CHECK (real_name_fp ~ '^[0-9a-f]{64}$'),
    real_name_masked text NOT NULL,
    accounts         text[] NOT NULL DEFAULT '{}',
    updated_seq      bigint NOT NULL
);
CREATE INDEX customers_real_name_fp ON proj.customers (real_name_fp);
CREATE INDEX customers_accounts ON proj.customers USING gin (accounts);

-- 2376 per-customer list: every OTP medium a customer has or had at home.
CREATE TABLE proj.customer_devices (
    customer_no text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('HARDWARE', 'MOBILE')),
    medium_id   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('ACTIVE', 'CANCELLED', 'REVOKED')),
    since       timestamptz NOT NULL,
    ended_at    timestamptz,
    updated_seq bigint NOT NULL,
    PRIMARY KEY (customer_no, kind, medium_id)
);

-- 2373 customer media history: every issue, registration, cancellation and revocation.
CREATE TABLE proj.customer_media (
    customer_no text NOT NULL,
    seq         bigint NOT NULL,
    idx         int NOT NULL,
    kind        text NOT NULL,
    medium_id   text NOT NULL,
    action      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    institution text NOT NULL,
    channel     text NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (customer_no, seq, idx)
);

-- 2376 per-device institutions: where a device is registered, since when, accident per institution.
CREATE TABLE proj.device_institutions (
    vendor         text NOT NULL,
    serial         text NOT NULL,
    institution    text NOT NULL,
    customer_no    text NOT NULL DEFAULT '',
    registered_at  timestamptz NOT NULL,
    warranty_from  text NOT NULL DEFAULT '',
    warranty_to    text NOT NULL DEFAULT '',
    in_accident    boolean NOT NULL DEFAULT false,
    accident_since timestamptz,
    updated_seq    bigint NOT NULL,
    PRIMARY KEY (vendor, serial, institution)
);
CREATE INDEX device_institutions_institution ON proj.device_institutions (institution, vendor, serial);
CREATE INDEX device_institutions_customer ON proj.device_institutions (customer_no) WHERE customer_no <> '';

-- 2376 per-device history, oldest first; (seq, idx) is the continuation cursor.
CREATE TABLE proj.device_history (
    vendor      text NOT NULL,
    serial      text NOT NULL,
    seq         bigint NOT NULL,
    idx         int NOT NULL,
    event_id    uuid NOT NULL,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    institution text NOT NULL,
    channel     text NOT NULL,
    actor_role  text NOT NULL,
    actor_id    text NOT NULL DEFAULT '',
    staff       text NOT NULL DEFAULT '',
    payload     json NOT NULL, -- json, not jsonb: the text is kept as encoded
    PRIMARY KEY (vendor, serial, seq, idx)
);

-- 2376 per-device error count: one number per device across institutions (R-HW-LOCK).
CREATE TABLE proj.device_errors (
    vendor        text NOT NULL,
    serial        text NOT NULL,
    count         int NOT NULL CHECK (count >= 0),
    locked        boolean NOT NULL,
    last_error_at timestamptz,
    last_reset_at timestamptz,
    updated_seq   bigint NOT NULL,
    PRIMARY KEY (vendor, serial)
);

-- The active mobile OTP of each customer (R-MOB-ONE-PHONE: at most one).
CREATE TABLE proj.mobile_otps (
    customer_no   text PRIMARY KEY,
    generator_no  text NOT NULL,
    phone_masked  text NOT NULL,
    issued_at     timestamptz NOT NULL,
    valid_until   timestamptz NOT NULL,
    errors        int NOT NULL CHECK (errors >= 0),
    locked        boolean NOT NULL,
    last_error_at timestamptz,
    last_reset_at timestamptz,
    updated_seq   bigint NOT NULL
);

-- Branch events awaiting a manager's approval (R-APPROVAL).
CREATE TABLE proj.pending_approvals (
    event_id       uuid PRIMARY KEY,
    seq            bigint NOT NULL,
    idx            int NOT NULL,
    aggregate_kind text NOT NULL,
    aggregate_key  text NOT NULL,
    type           text NOT NULL,
    institution    text NOT NULL,
    staff          text NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX pending_approvals_seq ON proj.pending_approvals (seq, idx);

-- Messages the projector could not decode or apply: never dropped silently.
CREATE TABLE proj.quarantine (
    seq     bigint PRIMARY KEY,
    subject text NOT NULL,
    error   text NOT NULL
);

-- +goose Down
DROP SCHEMA proj CASCADE;
