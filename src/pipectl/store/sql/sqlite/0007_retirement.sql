-- pipectl schema for SQLite: retired datasets and brands.

-- A retired (brand, dataset) leaves the gate and `status`; its row and history stay.
ALTER TABLE dataset_status ADD COLUMN retired_at TEXT;

-- A retired brand: which jobs its retirement archived (with the status each had) and which
-- datasets it retired, so that `brands restore` undoes exactly that.
CREATE TABLE brand_retirements (
    brand_id   TEXT PRIMARY KEY,
    retired_at TEXT NOT NULL,
    jobs       TEXT NOT NULL,    -- JSON: [{"id": 3, "status": "active"}, …]
    datasets   TEXT NOT NULL     -- JSON: ["ads_performance", …]
);
