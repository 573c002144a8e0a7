# The database tier: PostgreSQL running, nightly backups on a timer.
locals {
  pg_version = 16
  backup = {
    dir      = "/var/backups/postgres"
    schedule = "daily"
    keep     = 7
  }
}

task "postgres" {
  description = "PostgreSQL ${local.pg_version} installed and running"
  drift { policy = "alert_only" }
  selector {
    match_labels = { role = "db", env = local.env }
  }
  shell "install" {
    check   = "test -x /usr/lib/postgresql/${local.pg_version}/bin/postgres"
    command = "apt-get install -y postgresql-${local.pg_version}"
    env     = { DEBIAN_FRONTEND = "noninteractive" }
  }
  systemd "server" {
    unit = "postgresql.service"
  }
}

task "postgres_backups" {
  description = "Keep ${local.backup.keep} ${local.backup.schedule} dumps"
  selector {
    match_labels = { role = "db", env = local.env }
    match_expressions = [{ key = "replica", operator = "NotIn", values = ["true"] }]
  }
  shell "backup_dir" {
    check   = "test -d ${local.backup.dir}"
    command = "install -d -o postgres -m 0750 ${local.backup.dir}"
  }
  shell "prune" {
    check      = "test $(ls ${local.backup.dir} | wc -l) -le ${local.backup.keep}"
    command    = "ls -1t ${local.backup.dir} | tail -n +${local.backup.keep + 1} | xargs -r -I{} rm ${local.backup.dir}/{}"
    run_as     = "postgres"
    on_failure = "continue"
  }
  systemd "timer" {
    unit = "pg-backup.timer"
  }
}
