import ArgumentParser
import Foundation

/// A file the user names with `-f`, or standard input for `-`.
enum InputFile {
    static func contents(_ file: String) throws -> Data {
        if file == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        guard let contents = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        return contents
    }
}
