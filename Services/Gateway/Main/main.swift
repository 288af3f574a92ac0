import WardenGateway
import WardenServiceKit

await WardenServiceMain.run(GatewayService.self)
