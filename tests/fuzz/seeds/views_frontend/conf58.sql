CREATE VIEW tc AS SELECT t.id AS tid, c.id AS cid
FROM thread t LEFT JOIN comment c ON c.thread = t.id;
