# The web tier: runtimes through mise, the app's config, and its systemd service.
locals {
  web_port = 8080
  web_zones = ["a", "b"]
}

task "deploy_web" {
  description = "Check out ${local.app_name}, install its runtimes and keep it running"
  drift { policy = "remediate_and_alert" }
  selector {
    match_labels = { role = "web", env = local.env }
    match_expressions = [{ key = "zone", operator = "In", values = local.web_zones }]
  }

  mise "runtimes" {
    working_dir = local.app_dir
    check_task  = "check-node-${local.node}"
    apply_task  = "install"
    git {
      url    = "https://git.example.org/${local.app_name}/app.git"
      branch = "release"
    }
  }

  shell "config" {
    check       = "test -f /etc/${local.app_name}/config.json"
    command     = "install -D -m 0640 ${local.app_dir}/config.example.json /etc/${local.app_name}/config.json"
    run_as      = "root"
    on_failure  = "abort"
  }

  shell "port" {
    check       = "grep -q '\"port\": ${local.web_port}' /etc/${local.app_name}/config.json"
    command     = "jq '.port = ${local.web_port}' /etc/${local.app_name}/config.json > /tmp/c.json && mv /tmp/c.json /etc/${local.app_name}/config.json"
    working_dir = "/etc/${local.app_name}"
  }

  systemd "app" {
    unit = "${local.app_name}.service"
  }
}

task "web_canary_off" {
  description = "Canary hosts run the old release until promoted"
  selector {
    match_labels = { role = "web", canary = "true" }
  }
  systemd "app" {
    unit    = "${local.app_name}.service"
    state   = "stopped"
    enabled = false
  }
}
