CREATE VIEW "city list" AS SELECT DISTINCT "home city" AS city FROM "the users";
