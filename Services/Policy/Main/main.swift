import WardenPolicy
import WardenServiceKit

await WardenServiceMain.run(PolicyService.self)
