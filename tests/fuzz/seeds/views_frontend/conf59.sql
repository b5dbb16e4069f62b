CREATE VIEW t AS SELECT id, (SELECT id, body FROM comment WHERE thread = $parent.id) AS comments
FROM thread;
