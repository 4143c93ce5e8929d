# One AWS provider. No kubernetes or helm provider: everything inside the
# cluster (GPU Operator, Airflow, aistack) is installed by Flux from git, so
# Terraform never needs credentials for the Kubernetes API.

provider "aws" {
  region = var.region

  # Tags every resource that supports them, including those the modules create.
  default_tags {
    tags = local.tags
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
