CREATE VIEW users AS SELECT * FROM user;
-- format: flat
CREATE VIEW users_flat AS SELECT * FROM user;
