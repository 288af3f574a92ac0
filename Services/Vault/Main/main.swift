import WardenServiceKit
import WardenVault

await WardenServiceMain.run(VaultService.self)
