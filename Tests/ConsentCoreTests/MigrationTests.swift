import Testing

@testable import ConsentCore

@Suite struct SQLScriptTests {
    @Test func splitsAtTopLevelSemicolons() {
        #expect(SQLScript.statements("SELECT 1; SELECT 2;\nSELECT 3") == ["SELECT 1", "SELECT 2", "SELECT 3"])
    }

    @Test func semicolonsInsideQuotesCommentsAndBodiesStay() {
        let script = """
            -- a comment; with a semicolon
            INSERT INTO t VALUES ('a;b', 'it''s; fine');
            /* block; /* nested; */ still comment; */
            CREATE TABLE "odd;name" (x int);
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
            CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT 'x;$$y' $body$;
            SELECT $1::int;
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 5)
        #expect(statements[0].hasSuffix("VALUES ('a;b', 'it''s; fine')"))
        #expect(statements[1].hasSuffix("CREATE TABLE \"odd;name\" (x int)"))
        #expect(statements[2].hasSuffix("RETURN 1; END $$"))
        #expect(statements[3].hasSuffix("SELECT 'x;$$y' $body$"))
        #expect(statements[4] == "SELECT $1::int")
    }

    @Test func commentOnlyAndEmptyPiecesAreDropped() {
        #expect(SQLScript.statements(";;\n-- only a comment\n;  /* and this */ ;") == [])
        #expect(SQLScript.statements("") == [])
    }
}

@Suite struct MigrationPlanTests {
    let one = MigrationFile(version: 1, name: "init", sql: "CREATE TABLE a (x int);")
    let two = MigrationFile(version: 2, name: "more", sql: "CREATE TABLE b (x int);")

    func record(_ file: MigrationFile) -> AppliedMigration {
        AppliedMigration(version: file.version, name: file.name, checksum: file.checksum)
    }

    @Test func emptyDatabaseGetsEverythingInOrder() throws {
        #expect(try MigrationPlan.pending(files: [two, one], applied: []) == [one, two])
    }

    @Test func appliedMigrationsAreSkipped() throws {
        #expect(try MigrationPlan.pending(files: [one, two], applied: [record(one)]) == [two])
        #expect(try MigrationPlan.pending(files: [one, two], applied: [record(one), record(two)]) == [])
    }

    @Test func aChangedAppliedFileIsRefused() {
        let edited = MigrationFile(version: 1, name: "init", sql: "CREATE TABLE a (x bigint);")
        #expect(throws: MigrationProblem.changedAfterApply(version: 1, name: "init")) {
            try MigrationPlan.pending(files: [edited, two], applied: [record(one)])
        }
    }

    @Test func aDatabaseNewerThanTheBuildIsRefused() {
        #expect(throws: MigrationProblem.unknownApplied(version: 2, name: "more")) {
            try MigrationPlan.pending(files: [one], applied: [record(one), record(two)])
        }
    }

    @Test func duplicateVersionsAreRefused() {
        let clash = MigrationFile(version: 1, name: "other", sql: "SELECT 1;")
        #expect(throws: MigrationProblem.duplicateVersion(1)) {
            try MigrationPlan.pending(files: [one, clash], applied: [])
        }
    }

    @Test func fileNames() {
        #expect(MigrationFile(fileName: "0001_init.sql", sql: "")?.version == 1)
        #expect(MigrationFile(fileName: "0012_add_things.sql", sql: "")?.name == "add_things")
        for bad in ["init.sql", "1_init.sql", "0001_.sql", "0001_init.txt", "0000_zero.sql", "00a1_x.sql"] {
            #expect(MigrationFile(fileName: bad, sql: "") == nil, "\(bad)")
        }
    }

    @Test func checksumIsHexSHA256OfTheText() {
        // SHA-256("") is the well-known e3b0c442… value.
        #expect(
            MigrationFile(version: 1, name: "x", sql: "").checksum
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
