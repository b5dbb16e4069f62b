CREATE VIEW mine AS SELECT * FROM thread WHERE author = $me;
CREATE VIEW rich AS SELECT * FROM thread WHERE score > :min;
