# Versions. Modules are pinned to exact releases in the files that use them
# (network.tf, cluster.tf) because their input names change between majors:
# EKS module v21 renamed most cluster_* inputs, and this configuration uses the
# v21 names. Providers get a major-version range here; the exact build is
# recorded in .terraform.lock.hcl by the first `terraform init` (commit it).

terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables (variables.tf uses that for the public endpoint CIDRs).
  required_version = ">= 1.9"

  required_providers {
    # Both pinned modules (vpc 6.x, eks 21.x) require AWS provider 6.
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}
