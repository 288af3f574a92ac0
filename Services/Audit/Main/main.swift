import WardenAudit
import WardenServiceKit

await WardenServiceMain.run(AuditService.self)
