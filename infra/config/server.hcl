# server.hcl for infra/compose.yaml: read by both gateways and both reconcilers (one file for all
# Fluke server processes; each uses the parts it needs). Field reference: docs/configuration.md.
#
# Secrets never live in this file: `$NAME` / `${NAME}` are replaced by the process environment at
# start-up (compose passes them from your shell or an .env file), and an unset variable is a
# start-up error naming it.
server {
  # Inside the container: all interfaces. HAProxy (service `lb`) publishes them to the host.
  listen_agents      = ":7070"
  listen_http        = ":7071"
  heartbeat_interval = "10s"

  http {
    # The console (listen_http) answers only to these Host names, plus localhost and any IP
    # address: list the name people and tools reach it by (DNS-rebinding defence).
    # allowed_hosts = ["fluke.example.com"]

    # HAProxy (service `lb`) sends a PROXY v2 header naming each client: trust it from the
    # compose network so agents are throttled by their own address, not the balancer's. These
    # are Docker's default bridge pools; on a real network list your balancers' addresses only.
    trusted_proxies = ["172.16.0.0/12", "192.168.0.0/16"]
  }

  # Unscoped agent tokens: an agent presenting one may claim any name and labels.
  agent_tokens = ["$FLUKE_AGENT_TOKEN"]
  # Needed for POST /api/v1/reconcile, and for reads too here: listen_http binds every interface,
  # so api_read_access = "auto" (the default) asks for a token on GET /api/v1/..., the UI,
  # Bull Board and /metrics. /healthz and /readyz stay open.
  api_tokens   = ["$FLUKE_API_TOKEN"]

  # A scoped token binds what its agents may claim (refused at registration otherwise):
  # agent_token "staging" {
  #   token          = "$FLUKE_STAGING_AGENT_TOKEN"
  #   allowed_labels = { env = ["staging"] }
  #   name_pattern   = "stg-*"
  # }

  redis {
    # Redis with maxmemory-policy noeviction (infra/redis/redis.conf); processes refuse others.
    url    = "redis://redis:6379"
    prefix = "fluke"
  }

  git {
    # compose.yaml defaults FLUKE_GIT_URL to the demo repository the `seed` service builds from
    # examples/. Point it at your own: https://... (with basic_auth_user / basic_auth_password),
    # or git@host:org/repo.git with ssh_key_file (mount the key read-only).
    url           = "$FLUKE_GIT_URL"
    branch        = "main"
    poll_interval = "30s"
    # ssh_key_file        = "/etc/fluke/deploy_key"
    # basic_auth_user     = "fluke"
    # basic_auth_password = "$FLUKE_GIT_PASSWORD"
  }

  # TLS is OFF for this compose setup only: everything runs on one Docker network on one machine.
  # Anywhere agents connect over a real network, enable it (the default) and mount the files:
  #   tls {
  #     cert_file = "/etc/fluke/tls/server.crt"
  #     key_file  = "/etc/fluke/tls/server.key"
  #   }
  # HAProxy passes TCP through, so the gateways terminate TLS themselves; agents then use wss://.
  tls {
    enabled = false
  }

  drift {
    policy = "remediate"
    # remediate_and_alert / alert_only need a webhook:
    # alert_webhook = "https://alerts.example.com/fluke"
  }

  # Split processes must share events: "redis" (the default). "memory" works only for the
  # all-in-one `fluke server`.
  event_store {
    backend = "redis"
    redis {
      ttl = "168h"
    }
  }

  log {
    level  = "info"
    format = "json"
  }
}
