# Shared settings and the tasks every host gets. Locals are shared by all manifest files of the
# repository, so web.fluke.hcl and database.fluke.hcl use these too.
locals {
  env      = "production"
  app_name = "shop"
  app_dir  = "/opt/${local.app_name}"
  node     = "22"

  # The demo (`npm start`) runs one local agent labelled role = "demo"; its tasks only touch
  # this sandbox directory.
  demo_dir = "/tmp/fluke-demo"

  admins = ["alice", "bob"]
}

task "demo_sandbox" {
  description = "Demo: keep a sandbox directory with a greeting file in it"
  selector {
    match_labels = { role = "demo" }
  }
  shell "directory" {
    check   = "test -d ${local.demo_dir}"
    command = "mkdir -p ${local.demo_dir}"
  }
  shell "greeting" {
    check   = "grep -qx 'hello from fluke' ${local.demo_dir}/greeting.txt"
    command = "echo 'hello from fluke' > ${local.demo_dir}/greeting.txt"
  }
}

task "demo_motd" {
  description = "Demo: render a message of the day from a template (alerts instead of fixing drift)"
  drift { policy = "alert_only" }
  selector {
    match_labels = { role = "demo" }
  }
  shell "motd" {
    # $HOSTNAME is left for the host's shell to expand.
    check   = "test \"$(cat ${local.demo_dir}/motd 2>/dev/null)\" = \"${local.motd}\""
    command = "mkdir -p ${local.demo_dir} && printf '%s' \"${local.motd}\" > ${local.demo_dir}/motd"
    env     = { LC_ALL = "C" }
  }
}

locals {
  motd = "Welcome to ${upper(local.app_name)} (${local.env}). Admins: %{ for i, a in local.admins }${a}%{ if i < length(local.admins) - 1 }, %{ endif }%{ endfor }."
}

task "base_packages" {
  description = "Packages every production host needs"
  selector {
    match_labels = { env = local.env }
    match_expressions = [
      { key = "role", operator = "In", values = ["web", "db"] },
      { key = "maintenance", operator = "DoesNotExist" },
    ]
  }
  shell "packages" {
    check   = "dpkg -s ${join(" ", local.base_packages)} >/dev/null 2>&1"
    command = "apt-get update && apt-get install -y ${join(" ", local.base_packages)}"
    env     = { DEBIAN_FRONTEND = "noninteractive" }
  }
  systemd "time_sync" {
    unit = "systemd-timesyncd.service"
  }
}

locals {
  base_packages = sort(["curl", "ca-certificates", "jq", "rsync"])
}
