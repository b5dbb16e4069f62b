CREATE VIEW tu AS SELECT t.id AS tid, u.id AS uid FROM thread t JOIN user u ON t.author = u.id;
