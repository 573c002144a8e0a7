# agent.hcl for the demo agent of infra/compose.yaml. Field reference: docs/configuration.md.
# On a real host this file lives in /etc/fluke/agent.hcl (see infra/systemd/fluke-agent.service).
agent {
  # Through the load balancer: any gateway will do (the registry records which one holds us).
  # ws:// because TLS is disabled in infra/config/server.hcl; wss:// once it is enabled.
  server_url = "ws://lb:7070"
  # ws:// to a host that is not loopback sends the token in clear, so it is refused unless
  # allowed: here the compose network is private to this demo. Remove it with wss://.
  allow_insecure = true
  token      = "$FLUKE_AGENT_TOKEN"
  # The agent's own credential, written at its first connect. /etc/fluke is read-only in the
  # container, so it lives in the agent-state volume (infra/compose.yaml): a restarted container
  # keeps its identity instead of being refused as another holder of "demo-agent".
  credential_file = "/var/lib/fluke/agent.credential"

  # Defaults to the host name; in a container that is a random id, so name it.
  name   = "demo-agent"
  # role = "demo" selects only the demo tasks of examples/, which touch /tmp/fluke-demo only
  # (inside this container).
  labels = { role = "demo", env = "dev" }

  # With TLS and a private CA:
  # tls {
  #   ca_file = "/etc/fluke/ca.pem"
  # }

  execution {
    default_shell   = "/bin/bash"
    command_timeout = "1m"
  }

  log {
    level  = "info"
    format = "json"
  }
}
