import JetBackupCLI
JetBackupCommand.start()
