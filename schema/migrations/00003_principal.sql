-- +goose Up
-- Every event records the authenticated principal (api.md "Identity and
-- access"); the per-device history shows it. Views are derived: emptied here
-- and replayed from the stream, like 00002.
TRUNCATE proj.customers, proj.customer_devices, proj.customer_media, proj.device_institutions, proj.device_history,
    proj.device_errors, proj.mobile_otps, proj.pending_approvals, proj.quarantine;
DELETE FROM proj.checkpoint;
ALTER TABLE proj.device_history
    ADD COLUMN principal_id text NOT NULL DEFAULT '',
    ADD COLUMN principal_role text NOT NULL DEFAULT '',
    ADD COLUMN principal_method text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE proj.device_history DROP COLUMN principal_id, DROP COLUMN principal_role, DROP COLUMN principal_method;
