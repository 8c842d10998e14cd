public enum JetBackupVersion { public static let string = "0.1.0" }
