import WardenApprovals
import WardenServiceKit

await WardenServiceMain.run(ApprovalsService.self)
