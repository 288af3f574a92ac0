import WardenVault
import WardenServiceKit

await WardenServiceMain.run(VaultService.self)
