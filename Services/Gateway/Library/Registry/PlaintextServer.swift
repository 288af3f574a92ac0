/// A registered server whose values have not moved into the vault, as read (`stamp`: the row's
/// version, its `xmin`, so that a rewrite never overwrites a change made meanwhile).
package struct PlaintextServer: Sendable {
    package var definition: MCPServerDefinition
    package var stamp: String
}
