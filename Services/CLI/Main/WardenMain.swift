import ArgumentParser
import WardenCLI

@main
struct WardenMain {
    static func main() async {
        let command: any AsyncParsableCommand.Type = WardenCommand.self
        await command.main()
    }
}
