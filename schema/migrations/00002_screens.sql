-- +goose Up
-- The screens of domain.md §8 as revised: cancelled registrations stay in the
-- per-device institutions with when they ended and how the accident ended,
-- the history carries origin channel, documents and approval, and 2373 lists
-- each medium once with its issue status. Views are derived data: this
-- migration empties them and resets the checkpoint, so that the projector
-- (or `otpledger rebuild`) replays the stream into the new shape.
TRUNCATE proj.customers, proj.customer_devices, proj.device_institutions, proj.device_history,
    proj.device_errors, proj.mobile_otps, proj.pending_approvals, proj.quarantine;
DELETE FROM proj.checkpoint;

-- 2373 customer media history: one row per medium issued or registered, in force (ISSUED, "교부") or ended.
DROP TABLE proj.customer_media;
CREATE TABLE proj.customer_media (
    customer_no      text NOT NULL,
    seq              bigint NOT NULL,
    idx              int NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('HARDWARE', 'MOBILE')),
    medium_id        text NOT NULL,
    generator_number text NOT NULL,
    issue_status     text NOT NULL CHECK (issue_status IN ('ISSUED', 'ENDED')),
    institution      text NOT NULL,
    channel          text NOT NULL,
    issued_at        timestamptz NOT NULL,
    ended_at         timestamptz,
    end_reason       text NOT NULL DEFAULT '',
    PRIMARY KEY (customer_no, seq, idx)
);
CREATE INDEX customer_media_in_force ON proj.customer_media (customer_no, kind, medium_id) WHERE ended_at IS NULL;

ALTER TABLE proj.device_institutions
    ADD COLUMN ended_at timestamptz,
    ADD COLUMN cancel_reason text NOT NULL DEFAULT '',
    ADD COLUMN recovered_at timestamptz,
    ADD COLUMN recovered_in_branch boolean NOT NULL DEFAULT false;

ALTER TABLE proj.device_history
    ADD COLUMN origin_channel text NOT NULL DEFAULT '',
    ADD COLUMN documents text[] NOT NULL DEFAULT '{}',
    ADD COLUMN approved_by text NOT NULL DEFAULT '',
    ADD COLUMN approved_at timestamptz;
-- An approval finds its row through the primary key's (vendor, serial)
-- prefix: a device's history is short, and the busiest table gets no
-- second index to maintain on every event.

-- Whether an in-branch recovery has happened since the last loss report (R-HW-RECOVER-ONLINE).
ALTER TABLE proj.device_errors ADD COLUMN branch_recovered boolean NOT NULL DEFAULT false;

-- +goose Down
-- The old shape cannot hold the new facts: rebuild the views after going down.
TRUNCATE proj.customers, proj.customer_devices, proj.device_institutions, proj.device_history,
    proj.device_errors, proj.mobile_otps, proj.pending_approvals, proj.quarantine;
DELETE FROM proj.checkpoint;
ALTER TABLE proj.device_errors DROP COLUMN branch_recovered;
ALTER TABLE proj.device_history DROP COLUMN origin_channel, DROP COLUMN documents, DROP COLUMN approved_by, DROP COLUMN approved_at;
ALTER TABLE proj.device_institutions DROP COLUMN ended_at, DROP COLUMN cancel_reason, DROP COLUMN recovered_at, DROP COLUMN recovered_in_branch;
DROP TABLE proj.customer_media;
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
