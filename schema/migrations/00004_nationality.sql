-- +goose Up
-- Profiles say nationality (R-MOB-ELIGIBLE: Korean nationals, not residents);
-- customer_profiled of version 1 said residency and is upcast (DOMESTIC →
-- KOREAN). Views are derived: emptied here and replayed from the stream,
-- like 00002 and 00003.
TRUNCATE proj.customers, proj.customer_devices, proj.customer_media, proj.device_institutions, proj.device_history,
    proj.device_errors, proj.mobile_otps, proj.pending_approvals, proj.quarantine;
DELETE FROM proj.checkpoint;
ALTER TABLE proj.customers DROP CONSTRAINT customers_residency_check;
ALTER TABLE proj.customers RENAME COLUMN residency TO nationality;
ALTER TABLE proj.customers ADD CONSTRAINT customers_nationality_check CHECK (nationality IN ('KOREAN', 'FOREIGN'));

-- +goose Down
TRUNCATE proj.customers;
DELETE FROM proj.checkpoint;
ALTER TABLE proj.customers DROP CONSTRAINT customers_nationality_check;
ALTER TABLE proj.customers RENAME COLUMN nationality TO residency;
ALTER TABLE proj.customers ADD CONSTRAINT customers_residency_check CHECK (residency IN ('DOMESTIC', 'FOREIGN'));
