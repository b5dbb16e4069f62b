CREATE VIEW users AS SELECT * FROM user;
-- format: flat
CREATE VIEW users_flat AS SELECT * FROM user;
-- format: flat
CREATE VIEW n_users AS SELECT COUNT(*) AS n FROM user;
