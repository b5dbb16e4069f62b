CREATE VIEW threads AS
SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS author FROM thread;
