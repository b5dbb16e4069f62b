CREATE VIEW staff AS
SELECT *, (SELECT * FROM user WHERE id = $parent.boss)[0] AS boss FROM user;
