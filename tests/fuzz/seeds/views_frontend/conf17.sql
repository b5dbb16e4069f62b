CREATE VIEW t AS SELECT id, (SELECT id FROM comment WHERE thread = $parent.id) AS comments
FROM thread;
