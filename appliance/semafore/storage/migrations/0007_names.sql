-- Names people can recognise: a member's display name (set by an admin) and a device's name
-- (given by the device when it registers). Both optional, 1 to 64 characters, no control
-- characters (the services check that; the CHECKs here are the last line).

ALTER TABLE members ADD COLUMN display_name TEXT
    CHECK (display_name IS NULL OR length(display_name) BETWEEN 1 AND 64);

ALTER TABLE devices ADD COLUMN device_name TEXT
    CHECK (device_name IS NULL OR length(device_name) BETWEEN 1 AND 64);
