-- format: flat
CREATE VIEW f AS SELECT * FROM item WHERE live = 1;
