import Testing
@testable import JetStore

/// Every file name of an instance (FileNames.swift): each builder's name is parsed back by
/// its parser, and the parsers take only the canonical spelling, so a stray or hand-made
/// file is never taken for a log generation or a database.
@Suite struct FileNamesTests {
    @Test(arguments: [(UInt32(0), "edb00000000.log"), (1, "edb00000001.log"), (0x2A, "edb0000002A.log"),
                      (0xABCD_EF01, "edbABCDEF01.log"), (.max, "edbFFFFFFFF.log")])
    func archivedLogNameRoundTrips(generation: UInt32, name: String) {
        #expect(FileNames.archivedLog(generation) == name)
        #expect(FileNames.parseArchivedLog(name) == generation)
        // A compressed copy in a backup set is the same name with .zst appended.
        #expect(FileNames.parseArchivedLog(name + ".zst", compressed: true) == generation)
        #expect(FileNames.parseArchivedLog(name + ".zst") == nil)
        #expect(FileNames.parseArchivedLog(name, compressed: true) == nil)
    }

    @Test func hex8IsEightUpperCaseDigits() {
        #expect(FileNames.hex8(0) == "00000000")
        #expect(FileNames.hex8(0x00C0_FFEE) == "00C0FFEE")
        #expect(FileNames.hex8(.max) == "FFFFFFFF")
    }

    @Test(arguments: ["edb0000002a.log", "edb2A.log", "edb0000002.log", "edb00000002A.log", "edb0000002G.log",
                      "EDB0000002A.log", "edb0000002A.LOG", "edb0000002A.log.tmp", " edb0000002A.log", "edb0000002A.log ",
                      "edb+0000002.log", "edb-0000002.log", "edb 0000002.log", "edb0x00002A.log",
                      "edb" + String(repeating: "\u{FF10}", count: 7) + "1.log", "edb0000002A\u{301}.log",
                      "edb.log", "edbtmp.log", "edb.chk", "edb0000002A", "0000002A.log", ""])
    func nonCanonicalLogNameIsNotAGeneration(name: String) {
        #expect(FileNames.parseArchivedLog(name) == nil)
        #expect(FileNames.parseArchivedLog(name + ".zst", compressed: true) == nil)
    }

    /// The fixed names are distinct and none of them is taken for a generation or a database.
    @Test func fixedNamesAreDistinctAndParseAsNothingElse() {
        let fixed = [FileNames.parameters, FileNames.lock, FileNames.checkpoint, FileNames.currentLog,
                     FileNames.preparedLog, FileNames.events, FileNames.restoreMarker]
        #expect(Set(fixed).count == fixed.count)
        for name in fixed {
            #expect(FileNames.parseArchivedLog(name) == nil)
            #expect(FileNames.parseDatabase(name) == nil)
            #expect(FilePaths.isPlainName(name))
        }
    }

    // MARK: Databases

    @Test(arguments: ["a", "Z", "0", "orders_2026-11", "-", "_", String(repeating: "x", count: 64)])
    func databaseFileNameRoundTrips(name: String) {
        #expect(FileNames.isValidDatabaseName(name))
        #expect(FileNames.database(name) == name + ".edb")
        #expect(FileNames.parseDatabase(FileNames.database(name)) == name)
    }

    @Test(arguments: ["", String(repeating: "x", count: 65), "a.b", "a/b", "..", ".", "a b", "a\0b", "é", "ｘ",
                      "a\u{301}", "db.edb", "a\n"])
    func invalidDatabaseNameIsRefusedAndNotAttached(name: String) {
        #expect(!FileNames.isValidDatabaseName(name))
        #expect(FileNames.parseDatabase(name + ".edb") == nil)
    }

    @Test(arguments: ["db", "db.EDB", "db.edb.tmp", "db.edb~", ".edb", "db.edbx"])
    func fileWithoutTheDatabaseExtensionIsNotADatabase(name: String) {
        #expect(FileNames.parseDatabase(name) == nil)
    }

    /// The instance attaches exactly the files the parser accepts: a stray `.edb` whose stem
    /// is not a database name is left alone, not opened.
    @Test func instanceAttachesOnlyFilesNamedForADatabase() throws {
        let fs = try makeMemoryInstance()
        let db = try #require(fs.contents("/inst/db.edb"))
        fs.setContents("/inst/not a db.edb", db)
        fs.setContents("/inst/.edb", db)
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(inst.databaseNames == ["db"])
        try inst.close()
    }

    // MARK: Paths

    @Test func pathHelpers() {
        #expect(FilePaths.join("/a", "b") == "/a/b")
        #expect(FilePaths.join("/a/", "b") == "/a/b")
        #expect(FilePaths.join("", "b") == "b")
        #expect(FilePaths.directory(of: "/a/b/c") == "/a/b")
        #expect(FilePaths.directory(of: "/c") == "/")
        #expect(FilePaths.directory(of: "c") == ".")
        #expect(FilePaths.lastComponent("/a/b/c") == "c")
        #expect(FilePaths.lastComponent("c") == "c")
        #expect(FilePaths.lastComponent("/a/") == "")
    }

    @Test(arguments: ["", ".", "..", "a/b", "/", "a\0b", String(repeating: "n", count: 256)])
    func unsafeNameIsNotPlain(name: String) {
        #expect(!FilePaths.isPlainName(name))
    }

    @Test(arguments: ["a", "...", ".hidden", "edb00000001.log", String(repeating: "n", count: 255)])
    func plainName(name: String) {
        #expect(FilePaths.isPlainName(name))
    }
}
