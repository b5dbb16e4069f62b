CREATE VIEW answered AS SELECT * FROM thread t
WHERE EXISTS (SELECT 1 FROM comment c WHERE c.thread = t.id);
CREATE VIEW unanswered AS SELECT * FROM thread t
WHERE NOT EXISTS (SELECT 1 FROM comment c WHERE c.thread = t.id);
