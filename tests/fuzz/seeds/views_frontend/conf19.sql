CREATE VIEW t AS SELECT id,
  (SELECT id FROM comment WHERE thread = $parent.id AND status IS NULL) AS open
FROM thread;
