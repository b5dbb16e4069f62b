CREATE VIEW latest AS SELECT *,
  (SELECT * FROM comment WHERE thread = $parent.id ORDER BY n DESC LIMIT 1) AS last
FROM thread;
