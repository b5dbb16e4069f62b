CREATE VIEW thread_page AS
SELECT *,
  (SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS author
   FROM comment WHERE thread = $parent.id ORDER BY n) AS comments
FROM thread;
