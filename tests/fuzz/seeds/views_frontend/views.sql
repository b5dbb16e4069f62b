-- Valid views for replaying the bad logs in this directory.
CREATE VIEW users AS
SELECT * FROM user WHERE status = 'active';

CREATE VIEW threads AS
SELECT * FROM thread WHERE status = 'open';
