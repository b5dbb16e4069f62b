CREATE VIEW zeta AS SELECT * FROM user;
CREATE VIEW alpha AS SELECT * FROM user WHERE n >= 1;
-- format: flat
CREATE VIEW mid AS SELECT id FROM user WHERE n >= 2;
CREATE VIEW beta AS SELECT COUNT(*) AS k FROM user;
