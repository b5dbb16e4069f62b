CREATE VIEW sj AS SELECT a.id AS x, b.id AS y FROM user a JOIN user b ON a.boss = b.id;
