# State backend. Left commented so `terraform init` works in a fresh account
# with local state; a shared cluster should keep its state in S3 instead.
# Create the state bucket first (versioned, encrypted), then uncomment this
# block and run `terraform init -migrate-state`. Values cannot come from
# variables: backends are configured before variables are read.
#
# `use_lockfile` is S3-native state locking and needs Terraform 1.10 or later;
# on 1.9 use `dynamodb_table = "<lock table>"` instead.
#
# terraform {
#   backend "s3" {
#     bucket       = "<your-terraform-state-bucket>"
#     key          = "aistack/cluster-iac/terraform.tfstate"
#     region       = "<region>"
#     encrypt      = true
#     use_lockfile = true
#   }
# }
