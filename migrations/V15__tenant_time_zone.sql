-- The zone a tenant's back office counts its days in ("today", the last
-- 30 days): an IANA name, checked by the API before it is stored.
ALTER TABLE tenants ADD COLUMN time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC';
