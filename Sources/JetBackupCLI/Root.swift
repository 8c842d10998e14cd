import ArgumentParser

public struct JetBackupCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "jetbackup")
    public init() {}
}
