import Testing
import WardenServiceKit

@Suite struct MigrationPlanTests {
    let one = Migration(version: 1, name: "one", statements: ["CREATE TABLE a (x int)"])
    let two = Migration(version: 2, name: "two", statements: ["CREATE TABLE b (x int)"])

    @Test func pendingInVersionOrder() throws {
        #expect(try MigrationPlan.pending([two, one], applied: [:]).map(\.version) == [1, 2])
        #expect(try MigrationPlan.pending([two, one], applied: [1: one.checksum]).map(\.version) == [2])
        #expect(try MigrationPlan.pending([two, one], applied: [1: one.checksum, 2: two.checksum]).isEmpty)
    }

    @Test func duplicateVersionsAreRejected() {
        #expect(throws: MigrationError("migration version 1 is defined twice")) {
            try MigrationPlan.pending([one, Migration(version: 1, name: "again", statements: [])], applied: [:])
        }
    }

    @Test func changedMigrationIsRejected() {
        #expect(throws: MigrationError("migration 1 (one) changed after it was applied")) {
            try MigrationPlan.pending([one], applied: [1: "other checksum"])
        }
    }

    @Test func unknownAppliedVersionIsRejected() {
        #expect { try MigrationPlan.pending([one], applied: [1: one.checksum, 7: "x"]) } throws: {
            "\($0)".contains("newer version")
        }
    }

    @Test func checksumDependsOnStatements() {
        #expect(one.checksum != two.checksum)
        #expect(one.checksum == Migration(version: 1, name: "renamed", statements: one.statements).checksum)
    }
}
