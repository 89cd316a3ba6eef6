-- Version 2: NAT addresses and the product named by the line (CEF/LEEF).
ALTER TABLE events ADD COLUMN nat TEXT;        -- JSON Nat, when reported
ALTER TABLE events ADD COLUMN product TEXT;    -- "Vendor|Product"
