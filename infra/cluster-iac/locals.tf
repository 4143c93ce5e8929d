locals {
  tags = merge(
    {
      Project   = "aistack"
      Cluster   = var.cluster_name
      ManagedBy = "terraform"
    },
    var.tags,
  )

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # S3 bucket names are global: the account id keeps the default unique.
  outputs_bucket_name = coalesce(var.outputs_bucket_name, "${var.cluster_name}-outputs-${local.account_id}")

  # "namespace/name" strings from the variables, split once for the Pod
  # Identity associations.
  airflow_service_accounts = {
    for sa in var.airflow_service_accounts : sa => {
      namespace = split("/", sa)[0]
      name      = split("/", sa)[1]
    }
  }
  model_builder_service_account = {
    namespace = split("/", var.model_builder_service_account)[0]
    name      = split("/", var.model_builder_service_account)[1]
  }

  # What a build pod sets as AISTACK_REGISTRY: Ollama names a model
  # host/namespace/model:tag, so the ECR repositories are namespace/model.
  model_registry_host = "${local.account_id}.dkr.ecr.${var.region}.${data.aws_partition.current.dns_suffix}"
  model_registry_url  = "${local.model_registry_host}/${var.model_registry_namespace}"
}
