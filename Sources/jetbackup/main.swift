import JetBackupCLI
JetBackupCommand.main()
