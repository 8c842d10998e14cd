import ArgumentParser
import JetBackup

/// The root command: lists the subcommands. Each subcommand parses, calls the library and
/// formats; none holds storage logic.
public struct JetBackupCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "jetbackup",
        abstract: "A storage engine and online backup tool modelled on ESE's JetBackupInstance.",
        discussion: "Every command takes -i/--instance PATH (default $JETBACKUP_INSTANCE, else the current directory).",
        version: JetBackupVersion.string,
        subcommands: [
            Init.self, Config.self, Db.self, Put.self, Get.self, Delete.self, Scan.self, Load.self,
            Digest.self, Info.self, Logs.self, Check.self, //BACKUP
            Events.self,
        ]
    )
    public init() {}
}
